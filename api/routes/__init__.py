"""Route modules: the JSON API and the console pages."""
