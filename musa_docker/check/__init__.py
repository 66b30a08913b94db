"""Does an image hold what it should: the in-image probe (`probe`), the check after every build
(`image`), and `verify` of an image or of the host."""
