"""trace30's services: each package is one Flask app that checks one thing."""
