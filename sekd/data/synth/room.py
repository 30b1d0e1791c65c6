"""Simulated rooms and a tetrahedral first-order Ambisonics (FOA) microphone (pyroomacoustics).

Renders a dry speech signal and dry noise signals, placed as point sources in a random
shoebox room, onto a tetrahedral A-format array, and converts the capsule signals to
B-format, the input format of L3DAS23 task 1 (4-channel FOA, 16 kHz, mono target).

Array (A-format). Four capsules on a sphere of radius ``r = 1.5 cm`` around the array
centre (the size of common tetrahedral FOA microphones), pointing along the tetrahedron's
vertices, in the array frame x = front, y = left, z = up (the room's axes; the array is
not rotated)::

    FLU = ( 1,  1,  1) / sqrt(3)    front-left-up
    FRD = ( 1, -1, -1) / sqrt(3)    front-right-down
    BLD = (-1,  1, -1) / sqrt(3)    back-left-down
    BRU = (-1, -1,  1) / sqrt(3)    back-right-up

Each capsule is a cardioid ``g(theta) = (1 + cos theta) / 2`` about its own direction
(``pyroomacoustics.directivities.Cardioid``, applied by the image-source model to every
image's direction of arrival).

B-format (:func:`a_to_b`): ACN channel order and SN3D normalisation (AmbiX; what L3DAS
distributes), channels ``[W, Y, Z, X]``::

    W = (FLU + FRD + BLD + BRU) / 2
    Y = sqrt(3) / 2 * (FLU - FRD + BLD - BRU)
    Z = sqrt(3) / 2 * (FLU - FRD - BLD + BRU)
    X = sqrt(3) / 2 * (FLU + FRD - BLD - BRU)

For coincident ideal cardioids and a plane wave of amplitude ``s`` from the unit direction
``d`` (azimuth ``a``, elevation ``e``) this gives exactly the SN3D first-order encoding
``W = s``, ``Y = s sin(a) cos(e)``, ``Z = s sin(e)``, ``X = s cos(a) cos(e)``, since
``sum_i u_i = 0`` and e.g. ``FLU + FRD - BLD - BRU`` directions sum to ``(4 / sqrt(3), 0, 0)``.
Known limit: the capsules here are 1.5 cm apart from the centre, not coincident, and no
spacing-compensation filters are applied (real converters add them), so above roughly
``c / (2 pi r)`` ~ 3.6 kHz the dipoles X, Y, Z deviate from the ideal patterns; W (the
capsule mean) stays close to an omni at the centre up to a few kHz more. pyroomacoustics
high-passes every RIR (its gain below ~50 Hz depends on the fractional delay), so the
encoding holds from about 100 Hz up; ``tests/test_room.py`` checks it at 500 Hz.

Rooms (:class:`RoomConfig`, :func:`sample_room`): length, width, height uniform in
[3.5, 8] x [3, 6] x [2.5, 3.5] m; RT60 uniform in [0.2, 0.6] s, turned into one energy
absorption coefficient for all walls by Sabine's formula (``pyroomacoustics.inverse_sabine``,
which also gives the image-source order needed to reach the RT60). The array centre is at
least 1 m from every wall, at a height of 1.2-1.8 m (and 0.5 m below the ceiling). The
speech source is 0.75-2 m from the array centre (the L3DAS21/23 source grid spans about
+-2 m around its microphone), the noise source 0.75-3 m and at least 20 degrees away from
the speech as seen from the array; sources are at least 0.5 m from every wall and at a
height of 1-2 m. Positions are drawn by rejection sampling (at most 1,000 tries, an error
otherwise).

Room impulse responses (:func:`simulate_rirs`): a hybrid model, for speed. The image-source
model of pyroomacoustics is run up to order ``K = max_ism_order`` (12): it is complete for
every path shorter than about ``K * L_eff`` with ``L_eff = (sum_i 1 / L_i^2)^(-1/2)`` (the
nearest image of order ``K + 1`` of a shoebox of sides ``L_i``), i.e. up to the mixing time
``t_mix = K * L_eff / c`` (60-110 ms here). After ``t_mix`` the response is a diffuse tail,
as in Lehmann & Johansson (2010, "Diffuse reverberation model for efficient image-source
simulation of room impulse responses"): Gaussian noise with the energy envelope
``sigma^2(t) = sigma0^2 10^(-6 t / T60)``, drawn in B-format as an ideal diffuse field
(``W ~ N(0, sigma^2)``, ``X, Y, Z ~ N(0, sigma^2 / 3)``, independent) and mapped to the
capsules with :func:`b_to_a`. ``sigma0`` is fitted to the image-source W energy over the
20 ms before ``t_mix``; the two parts are cross-faded (raised cosine, 10 ms). The tail is
white (no frequency-dependent decay or air absorption). When Sabine's order is at most
``K`` the image-source model alone is complete and no tail is added. This keeps a room at
15-25 ms instead of up to seconds for a full image-source model at RT60 0.6 s.

Target (:func:`render_scene`): the *direct-path* speech at the array centre, i.e. the dry
speech delayed by ``d / c`` and attenuated by ``1 / d`` (an anechoic pyroomacoustics
simulation, ``max_order=0``, with an omnidirectional microphone at the centre; same
fractional-delay filter as the room). It is time-aligned with W: W's direct path is the
mean of the capsules' direct paths, whose delays ``(d - r u_i . n) / c`` average to
``d / c`` because ``sum_i u_i = 0``. So the mono target is learnable from the FOA input
(denoising and dereverberation, no delay to guess). pyroomacoustics centres its
fractional-delay filter 40 samples late; that common offset is removed from every output.

Determinism: everything random (room, positions, the diffuse tail) comes from the
``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import fftconvolve

CAPSULES: tuple[str, ...] = ("FLU", "FRD", "BLD", "BRU")
#: capsule directions (unit vectors, rows in :data:`CAPSULES` order) in the array frame x front, y left, z up
CAPSULE_DIRECTIONS = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64) / math.sqrt(3)
#: B-format channel names in ACN order (SN3D normalisation)
B_CHANNELS: tuple[str, ...] = ("W", "Y", "Z", "X")
_K = math.sqrt(3) / 2
#: A-format (FLU, FRD, BLD, BRU) -> B-format (W, Y, Z, X) ACN/SN3D, for ideal cardioid capsules
A_TO_B = np.array(
    [
        [0.5, 0.5, 0.5, 0.5],  # W
        [_K, -_K, _K, -_K],  # Y
        [_K, -_K, -_K, _K],  # Z
        [_K, _K, -_K, -_K],  # X
    ]
)
#: B-format (W, Y, Z, X) -> the ideal cardioid capsule signals: FLU = (W + u . (X, Y, Z)) / 2, ...
B_TO_A = 0.5 * np.concatenate([np.ones((4, 1)), CAPSULE_DIRECTIONS[:, [1, 2, 0]]], axis=1)
SPEED_OF_SOUND = 343.0  # m/s, pyroomacoustics' default
ROOM_VERSION = 1  # bump when the same seed would give a different room or rendering


@dataclass(frozen=True)
class RoomConfig:
    """Ranges the rooms and positions are drawn from (metres, seconds); see the module docstring."""

    length: tuple[float, float] = (3.5, 8.0)
    width: tuple[float, float] = (3.0, 6.0)
    height: tuple[float, float] = (2.5, 3.5)
    rt60: tuple[float, float] = (0.2, 0.6)
    array_radius: float = 0.015
    array_wall_margin: float = 1.0
    array_height: tuple[float, float] = (1.2, 1.8)
    source_wall_margin: float = 0.5
    source_height: tuple[float, float] = (1.0, 2.0)
    speech_distance: tuple[float, float] = (0.75, 2.0)
    noise_distance: tuple[float, float] = (0.75, 3.0)
    min_separation_deg: float = 20.0
    max_ism_order: int = 12

    def to_dict(self) -> dict:
        """JSON-friendly form (lists), for a corpus's parameter file."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class RoomGeometry:
    """One simulated scene: room size, RT60, array centre and source positions (metres)."""

    room_dim: tuple[float, float, float]
    rt60: float
    array_center: tuple[float, float, float]
    sources: tuple[tuple[float, float, float], ...]  # speech first, then the noise sources

    def distance(self, source: int = 0) -> float:
        """Distance from the array centre to source ``source`` (m)."""
        return float(np.linalg.norm(np.subtract(self.sources[source], self.array_center)))


def a_to_b(a: np.ndarray) -> np.ndarray:
    """A-format ``[4, ...]`` (FLU, FRD, BLD, BRU) -> B-format ``[4, ...]`` (W, Y, Z, X), ACN/SN3D.

    ``W = (FLU + FRD + BLD + BRU) / 2``, ``Y = sqrt(3)/2 (FLU - FRD + BLD - BRU)``,
    ``Z = sqrt(3)/2 (FLU - FRD - BLD + BRU)``, ``X = sqrt(3)/2 (FLU + FRD - BLD - BRU)``:
    exact SN3D first-order components for coincident cardioids ``(1 + cos theta) / 2``.
    """
    a = np.asarray(a)
    if a.shape[0] != 4:
        raise ValueError(f"A-format needs 4 capsule signals on the first axis, got shape {a.shape}")
    return np.tensordot(A_TO_B, a, axes=(1, 0))


def b_to_a(b: np.ndarray) -> np.ndarray:
    """B-format ``[4, ...]`` (W, Y, Z, X) -> ideal cardioid capsules ``(W + u_i . (X, Y, Z)) / 2``;
    inverse of :func:`a_to_b`."""
    b = np.asarray(b)
    if b.shape[0] != 4:
        raise ValueError(f"B-format needs 4 channels (W, Y, Z, X) on the first axis, got shape {b.shape}")
    return np.tensordot(B_TO_A, b, axes=(1, 0))


def capsule_positions(center, radius: float = 0.015) -> np.ndarray:
    """Capsule positions ``[3, 4]`` (pyroomacoustics' layout) of the array centred at ``center``."""
    return (np.asarray(center, dtype=np.float64)[None] + radius * CAPSULE_DIRECTIONS).T


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _place_source(
    rng: np.random.Generator,
    dim: np.ndarray,
    center: np.ndarray,
    dist: tuple[float, float],
    cfg: RoomConfig,
    away_from: np.ndarray | None,
    tries: int = 1000,
) -> np.ndarray:
    m = cfg.source_wall_margin
    z_lo, z_hi = cfg.source_height[0], min(cfg.source_height[1], dim[2] - m)
    cos_sep = math.cos(math.radians(cfg.min_separation_deg))
    for _ in range(tries):
        p = np.array([_uniform(rng, (m, dim[0] - m)), _uniform(rng, (m, dim[1] - m)), _uniform(rng, (z_lo, z_hi))])
        v = p - center
        d = float(np.linalg.norm(v))
        if not dist[0] <= d <= dist[1]:
            continue
        if away_from is not None:
            w = away_from - center
            if float(v @ w) / (d * float(np.linalg.norm(w))) > cos_sep:
                continue
        return p
    raise RuntimeError(
        f"no source position {dist[0]}-{dist[1]} m from the array in a room of {dim.tolist()} m "
        f"after {tries} tries; widen RoomConfig's ranges"
    )


def sample_room(rng: np.random.Generator, num_noise_sources: int = 1, cfg: RoomConfig = RoomConfig()) -> RoomGeometry:
    """Draw a room, an RT60, the array centre, the speech source and ``num_noise_sources`` noise sources.

    Positions are rounded to the millimetre and the RT60 to the millisecond (so a scene prints
    and compares exactly); see the module docstring for the ranges.
    """
    dim = np.array([_uniform(rng, cfg.length), _uniform(rng, cfg.width), _uniform(rng, cfg.height)]).round(3)
    rt60 = round(_uniform(rng, cfg.rt60), 3)
    m = cfg.array_wall_margin
    z_hi = min(cfg.array_height[1], dim[2] - cfg.source_wall_margin)
    center = np.array(
        [_uniform(rng, (m, dim[0] - m)), _uniform(rng, (m, dim[1] - m)), _uniform(rng, (cfg.array_height[0], z_hi))]
    ).round(3)
    speech = _place_source(rng, dim, center, cfg.speech_distance, cfg, None).round(3)
    noises = [
        _place_source(rng, dim, center, cfg.noise_distance, cfg, speech).round(3) for _ in range(num_noise_sources)
    ]
    as_tuple = lambda p: tuple(float(x) for x in p)  # noqa: E731
    return RoomGeometry(as_tuple(dim), float(rt60), as_tuple(center), tuple(as_tuple(p) for p in [speech, *noises]))


def _fdl_offset() -> int:
    import pyroomacoustics as pra

    return int(pra.constants.get("frac_delay_length")) // 2


def ism_rirs(
    geom: RoomGeometry, sample_rate: int, max_order: int, absorption: float | None = None, radius: float = 0.015
) -> np.ndarray:
    """Image-source RIRs ``[S, 4, L]`` of every source of ``geom`` at the 4 cardioid capsules (A-format).

    pyroomacoustics up to reflection order ``max_order`` (0: anechoic) with one energy
    absorption coefficient for all walls (``None``: pyroomacoustics' default, rigid walls).
    Index ``n`` is time ``(n - 40) / fs`` (pyroomacoustics' centred fractional-delay filter).
    """
    rir = _pra_rirs(geom, sample_rate, max_order, absorption, capsule_positions(geom.array_center, radius), True)
    length = max(len(r) for per_mic in rir for r in per_mic)
    h = np.zeros((len(geom.sources), 4, length))
    for m, per_mic in enumerate(rir):
        for s, r in enumerate(per_mic):
            h[s, m, : len(r)] = r
    return h


def _pra_rirs(
    geom: RoomGeometry,
    sample_rate: int,
    max_order: int,
    absorption: float | None,
    positions: np.ndarray,
    cardioid: bool,
) -> list[list[np.ndarray]]:
    """pyroomacoustics ``rir[mic][source]`` for microphones at ``positions [3, M]`` (cardioid capsules
    along :data:`CAPSULE_DIRECTIONS` when ``cardioid``, else omnidirectional)."""
    import pyroomacoustics as pra
    from pyroomacoustics.directivities import Cardioid, DirectionVector

    materials = pra.Material(absorption) if absorption is not None else None
    room = pra.ShoeBox(
        list(geom.room_dim), fs=sample_rate, max_order=max_order, materials=materials, air_absorption=False
    )
    directivity = None
    if cardioid:
        directivity = [
            Cardioid(DirectionVector(math.degrees(math.atan2(u[1], u[0])), math.degrees(math.acos(u[2])), degrees=True))
            for u in CAPSULE_DIRECTIONS
        ]
    room.add_microphone_array(positions, directivity=directivity)
    for src in geom.sources:
        room.add_source(list(src))
    room.compute_rir()
    return [[np.asarray(r, dtype=np.float64) for r in per_mic] for per_mic in room.rir]


def diffuse_tail(length: int, rt60: float, sample_rate: int, rng: np.random.Generator, start: int = 0) -> np.ndarray:
    """B-format ``[4, length]`` (W, Y, Z, X) diffuse-field noise with the energy decay of ``rt60``.

    Sample ``n`` has variance ``10^(-6 (n - start) / (rt60 fs))`` on W and a third of it on
    X, Y, Z (an ideal diffuse field: the dipoles' mean squared gain over the sphere is 1/3).
    """
    t = (np.arange(length) - start) / sample_rate
    envelope = 10.0 ** (-3.0 * t / rt60)  # amplitude: 60 dB of energy over rt60
    scale = np.array([1.0, 1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)])[:, None]
    return rng.standard_normal((4, length)) * scale * envelope[None]


def mixing_time(room_dim, max_order: int, c: float = SPEED_OF_SOUND) -> float:
    """Seconds up to which an image-source model of order ``max_order`` holds every path: ``K L_eff / c``."""
    l_eff = 1.0 / math.sqrt(sum(1.0 / float(x) ** 2 for x in room_dim))
    return max_order * l_eff / c


def simulate_rirs(
    geom: RoomGeometry, sample_rate: int, rng: np.random.Generator, cfg: RoomConfig = RoomConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """A-format RIRs ``[S, 4, L]`` of every source and the direct-path RIR ``[L0]`` of the speech (source 0)
    at the array centre (omni). Both keep pyroomacoustics' 40-sample filter offset (:func:`render_scene`
    removes it). Image sources up to ``cfg.max_ism_order`` plus a diffuse tail (module docstring)."""
    import pyroomacoustics as pra

    absorption, sabine_order = pra.inverse_sabine(geom.rt60, list(geom.room_dim))
    order = min(int(sabine_order), cfg.max_ism_order)
    h = ism_rirs(geom, sample_rate, order, absorption, cfg.array_radius)
    off = _fdl_offset()
    n_mix = off + int(round(mixing_time(geom.room_dim, order) * sample_rate))
    if sabine_order > order:  # the image sources stop short of the RT60: diffuse tail after t_mix
        length = max(n_mix, off + int(math.ceil(geom.rt60 * sample_rate)))
        h = np.pad(h[..., :length], ((0, 0), (0, 0), (0, max(0, length - h.shape[-1]))))
        fade_len = int(round(0.010 * sample_rate))
        fit_len = int(round(0.020 * sample_rate))
        fade = np.zeros(length)
        fade[n_mix:] = 1.0
        fade[n_mix - fade_len : n_mix] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade_len) + 0.5) / fade_len)
        t_fit = (np.arange(n_mix - fit_len, n_mix) - off) / sample_rate
        decay_fit = np.mean(10.0 ** (-6.0 * t_fit / geom.rt60))
        for s in range(len(geom.sources)):
            w = a_to_b(h[s])[0]
            sigma0 = math.sqrt(float(np.mean(w[n_mix - fit_len : n_mix] ** 2)) / decay_fit)
            late = b_to_a(sigma0 * diffuse_tail(length, geom.rt60, sample_rate, rng, start=off))
            h[s] = h[s] * (1.0 - fade) + late * fade
    direct = _pra_rirs(
        RoomGeometry(geom.room_dim, geom.rt60, geom.array_center, geom.sources[:1]),
        sample_rate,
        0,
        None,
        np.asarray(geom.array_center, dtype=np.float64)[:, None],
        False,
    )[0][0]
    return h, direct


def render_scene(
    speech: np.ndarray,
    noises: list[np.ndarray],
    geom: RoomGeometry,
    sample_rate: int,
    rng: np.random.Generator,
    cfg: RoomConfig = RoomConfig(),
) -> dict[str, np.ndarray]:
    """Render dry mono ``speech [T]`` and ``noises`` (one ``[T]`` per noise source of ``geom``) in the room.

    Returns float64 ``{"target": [T] direct-path speech at the array centre, "speech": [4, T] B-format
    speech image (W, Y, Z, X), "noise": [4, T] B-format image of all noise sources}``, all with
    pyroomacoustics' filter offset removed and cut to ``T`` samples (the reverberant tail past the
    end of the dry signal is dropped). Levels are physical (``1/d`` spreading); scale them afterwards.
    """
    speech = np.asarray(speech, dtype=np.float64)
    if speech.ndim != 1:
        raise ValueError(f"speech must be mono [T], got shape {speech.shape}")
    if len(noises) != len(geom.sources) - 1:
        raise ValueError(f"{len(noises)} noise signals for {len(geom.sources) - 1} noise sources")
    n = len(speech)
    for x in noises:
        if np.shape(x) != (n,):
            raise ValueError(f"each noise must be mono of the speech's length {n}, got shape {np.shape(x)}")
    h, direct = simulate_rirs(geom, sample_rate, rng, cfg)
    off = _fdl_offset()

    def convolve(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
        y = fftconvolve(x[None], np.atleast_2d(rir), axes=-1)[:, off : off + n]
        if y.shape[-1] < n:
            y = np.pad(y, ((0, 0), (0, n - y.shape[-1])))
        return y

    image = a_to_b(convolve(speech, h[0]))
    noise = np.zeros((4, n))
    for s, x in enumerate(noises, start=1):
        noise += a_to_b(convolve(np.asarray(x, dtype=np.float64), h[s]))
    return {"target": convolve(speech, direct)[0], "speech": image, "noise": noise}
