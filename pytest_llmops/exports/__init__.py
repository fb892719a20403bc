"""Exports of eval results to other tools (``llmops export ...``); each imports its tool only when used."""
