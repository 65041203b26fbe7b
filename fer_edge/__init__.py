"""fer-edge: facial emotion recognition from paper recipes to edge devices."""

__version__ = "0.1.0"
