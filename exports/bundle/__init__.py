"""The bundle format, read and written by both sides: layout, manifest, comparison rules, evaluation rows, test
data, and the closed-set reading of a bundle someone else made. Imports no torch."""
