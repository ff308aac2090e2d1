"""Scripted, keyboard and learning agents. They reach worlds only through the Gymnasium API."""
