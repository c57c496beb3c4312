"""driftloop: raw, mostly unlabelled text in; a fresh, validated, fine-tuned classifier out."""

__version__ = "0.1.0"
