"""Pure torch networks; never import chain."""
