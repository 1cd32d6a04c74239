"""HTTP routes: schema in, status code, schema out."""
