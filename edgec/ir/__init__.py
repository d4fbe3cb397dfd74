"""edgec's intermediate representation and the utilities every layer uses: errors, dtypes,
fixed-point math, budgets, the graph, C text helpers, templates, progress, signals, bundles."""
