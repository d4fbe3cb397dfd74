"""Size reports and budgets of linked firmware, and their renderings."""
