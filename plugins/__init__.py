"""zoo's built-in plugins, written exactly as a third party writes theirs: through zoo.hookspecs."""
