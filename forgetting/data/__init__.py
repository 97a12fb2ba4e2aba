"""Data: datasets as uint8 tensors (``datasets``), which ids train (``selection``), label and
pixel noise (``noise``), batch transforms on the device (``transforms``)."""
