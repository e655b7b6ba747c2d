"""``flask --app wizard …`` commands for support staff and operators, one module each."""
