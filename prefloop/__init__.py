"""prefloop: inline code suggestions that learn from the developers who use them."""

__version__ = "0.1.0"
