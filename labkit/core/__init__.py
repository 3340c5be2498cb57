"""The vocabulary every other layer shares: where things live (paths), the errors (errors),
every label and tag key (labels), one way to wait (waiting), slugs and image references
(names), and the Docker client factory (engine). It imports nothing else of labkit."""
