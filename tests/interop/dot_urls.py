"""The URLconf of the provider: django-oauth-toolkit's URLs under ``/o/``.

Imported by Django once it is set up (see :mod:`dot_site`), never before.
"""

from __future__ import annotations

from django.urls import include, path
from dot_site import PREFIX

urlpatterns = [
    path(PREFIX, include("oauth2_provider.urls", namespace="oauth2_provider")),
]
