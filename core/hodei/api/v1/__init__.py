"""Generated from ``proto/hodei/api/v1/*.proto`` by ``scripts/gen-proto``: do not edit by hand."""
