"""Marshmallow schemas: one module per API resource, validation inside the schema."""
