"""The one training loop: teachers, baseline students and distilled students alike."""
