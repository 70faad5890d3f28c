"""ftauth: "Se connecter avec France Travail" for Django."""

__version__ = "0.1.0"
