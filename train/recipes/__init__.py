"""Data files (TOML) installed as package data; see the README."""
