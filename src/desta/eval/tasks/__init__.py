"""One module per benchmark; see `desta.eval.registry` for the names."""
