"""The vocabulary every other layer shares: where things live (paths), the errors (errors),
every label and tag key (labels), one way to wait (waiting), slugs and image references
(names), the Docker client factory (engine), and bounded background threads that are always
stopped (background). It imports nothing else of labkit."""
