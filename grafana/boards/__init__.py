"""One module per dashboard; each exposes `build(rules) -> Board`."""
