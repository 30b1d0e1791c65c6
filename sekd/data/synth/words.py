"""Word lists and a tiny grammar that make the mini corpus's sentences.

A sentence is ``subject verb object [prepositional phrase]* [adverb]``, where a noun
phrase is a pronoun or ``determiner [adjective] noun``. The words are everyday English
chosen to be read reliably by eSpeak NG (no abbreviations, numbers or homographs that
change with context). Sentences are nonsense but grammatical, so the synthesizer's
prosody (phrase accents, final fall) behaves as it does on real text.
"""
from __future__ import annotations

import numpy as np

DETERMINERS: tuple[str, ...] = (
    "the", "a", "one", "this", "that", "my", "your", "his", "her", "our", "their",
    "every", "some", "another",
)

PRONOUNS: tuple[str, ...] = ("she", "he", "we", "they", "i", "you", "someone", "everyone")

ADJECTIVES: tuple[str, ...] = (
    "old", "new", "big", "small", "little", "large", "long", "short", "tall", "young",
    "red", "blue", "green", "yellow", "black", "white", "brown", "golden", "silver",
    "dark", "bright", "quiet", "loud", "soft", "hard", "warm", "cold", "hot", "cool",
    "wet", "dry", "clean", "dirty", "heavy", "light", "empty", "full", "strong", "weak",
    "happy", "sad", "angry", "calm", "busy", "lazy", "kind", "clever", "careful",
    "strange", "simple", "famous", "friendly", "gentle", "narrow", "wide", "deep",
    "fresh", "sweet", "bitter", "round", "square", "broken", "hidden", "early", "late",
    "nearby", "distant", "tiny", "huge", "rough", "smooth", "wooden", "plastic", "paper",
)

NOUNS: tuple[str, ...] = (
    "dog", "cat", "horse", "bird", "fish", "cow", "sheep", "rabbit", "mouse", "duck",
    "teacher", "doctor", "farmer", "driver", "baker", "singer", "painter", "sailor",
    "child", "woman", "man", "girl", "boy", "friend", "neighbor", "student", "captain",
    "king", "queen", "family", "brother", "sister", "mother", "father", "stranger",
    "house", "garden", "kitchen", "window", "door", "table", "chair", "floor", "wall",
    "roof", "bridge", "river", "lake", "forest", "mountain", "valley", "island", "beach",
    "road", "street", "village", "city", "market", "station", "harbor", "school",
    "library", "office", "shop", "church", "castle", "tower", "field", "farm", "hill",
    "book", "letter", "paper", "pencil", "box", "bag", "basket", "bottle", "cup",
    "plate", "bowl", "spoon", "knife", "key", "lamp", "clock", "picture", "map",
    "ticket", "coat", "hat", "shoe", "shirt", "ring", "coin", "rope", "ball", "kite",
    "boat", "ship", "train", "car", "bus", "bicycle", "wagon", "ladder", "bucket",
    "apple", "orange", "lemon", "bread", "cheese", "butter", "cake", "soup", "rice",
    "tea", "coffee", "milk", "water", "honey", "sugar", "salt", "egg", "carrot",
    "flower", "tree", "leaf", "stone", "rock", "sand", "grass", "seed", "branch",
    "cloud", "rain", "snow", "breeze", "storm", "sun", "moon", "star", "sky", "fire",
    "song", "story", "game", "gift", "plan", "secret", "message", "question", "answer",
    "morning", "evening", "winter", "summer", "journey", "dinner", "lesson", "music",
)

VERBS: tuple[str, ...] = (
    "saw", "found", "took", "gave", "made", "brought", "bought", "sold", "kept", "left",
    "held", "carried", "moved", "pushed", "pulled", "lifted", "dropped", "threw",
    "caught", "opened", "closed", "painted", "cleaned", "washed", "cooked", "baked",
    "built", "fixed", "broke", "cut", "folded", "packed", "filled", "emptied", "covered",
    "watched", "heard", "followed", "helped", "visited", "met", "called", "chose",
    "needed", "wanted", "liked", "loved", "hated", "missed", "remembered", "forgot",
    "noticed", "checked", "counted", "measured", "picked", "planted", "watered",
    "borrowed", "returned", "shared", "sent", "wrote", "signed", "drew", "sang", "played",
    "won", "lost", "hid", "showed", "touched", "tasted", "smelled", "reached", "passed",
    "crossed", "climbed", "guarded", "described", "answered", "finished", "started",
)

ADVERBS: tuple[str, ...] = (
    "slowly", "quickly", "quietly", "loudly", "gently", "carefully", "happily", "sadly",
    "again", "today", "yesterday", "twice", "together", "alone", "early", "later",
    "soon", "finally", "suddenly", "easily", "rarely", "often", "almost", "nearly",
    "calmly", "proudly", "badly", "politely", "secretly", "openly",
)

PREPOSITIONS: tuple[str, ...] = (
    "in", "on", "under", "over", "near", "behind", "beside", "across", "along",
    "through", "into", "from", "with", "without", "after", "before", "around",
    "below", "above", "past", "toward", "inside", "outside", "beyond",
)

ALL_WORDS: tuple[str, ...] = tuple(
    sorted(set(DETERMINERS + PRONOUNS + ADJECTIVES + NOUNS + VERBS + ADVERBS + PREPOSITIONS))
)


def _choice(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _noun_phrase(rng: np.random.Generator, allow_pronoun: bool) -> list[str]:
    if allow_pronoun and rng.random() < 0.25:
        return [_choice(rng, PRONOUNS)]
    words = [_choice(rng, DETERMINERS)]
    if rng.random() < 0.5:
        words.append(_choice(rng, ADJECTIVES))
    words.append(_choice(rng, NOUNS))
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return words


def _random_sentence(rng: np.random.Generator) -> list[str]:
    words = _noun_phrase(rng, allow_pronoun=True)
    words.append(_choice(rng, VERBS))
    words += _noun_phrase(rng, allow_pronoun=False)
    for _ in range(int(rng.integers(0, 3))):
        words.append(_choice(rng, PREPOSITIONS))
        words += _noun_phrase(rng, allow_pronoun=False)
    if rng.random() < 0.3:
        words.append(_choice(rng, ADVERBS))
    return words


def make_sentence(rng: np.random.Generator, min_words: int = 4, max_words: int = 12) -> list[str]:
    """Draw a grammatical nonsense sentence of ``min_words``..``max_words`` words.

    The length is drawn uniformly first, then sentences are drawn until one has that
    length (every length from 4 to 12 is reachable). Returns lowercase words without
    punctuation; :func:`sentence_to_tts` turns them into text for the synthesizer.
    """
    if not 4 <= min_words <= max_words <= 12:
        raise ValueError(f"need 4 <= min_words <= max_words <= 12, got {min_words}, {max_words}")
    target = int(rng.integers(min_words, max_words + 1))
    for _ in range(10_000):
        words = _random_sentence(rng)
        if len(words) == target:
            return words
    raise RuntimeError(f"could not draw a sentence of {target} words")  # pragma: no cover


def sentence_to_tts(words: list[str]) -> str:
    """``["the", "dog", "ran"] -> "The dog ran."`` (capitalised, final full stop)."""
    text = " ".join("I" if w == "i" else w for w in words)
    return text[0].upper() + text[1:] + "."
