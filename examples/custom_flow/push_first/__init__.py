"""An mfaflow plugin: the ``pick_push`` action of the push-first-login flow."""
