"""Parsing: source files and spans, the lark parser, the spanned surface tree."""
