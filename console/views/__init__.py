"""Console pages: function-based views split by area; writes through console.services, reads through selectors."""
