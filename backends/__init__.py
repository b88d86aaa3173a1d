"""Execution and storage backends. Never imports Flask, Celery or MongoDB:
workers hand backends plain data and store what they return."""
