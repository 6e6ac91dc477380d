"""Acting as someone else: each attack a test, on real servers where a user would meet it.

Where each attack of the trust review is played:

- a stranger takes an offline person's nick (a command, an attempt of their own, a role
  change, promoting by the identity a ping names): ``test_hostmask_attacks.py``;
- a WHOIS answer landing on the wrong person (another user@host, a NICK or QUIT before the
  answer): ``test_whois_binding.py``;
- config masks that match anyone, masks in account mode: ``test_config_masks.py``;
- one helper reconnecting under new idents, a connection matching two masks:
  ``test_hostmask_attacks.py``;
- an unknown CASEMAPPING: ``test_casemapping_unknown.py``;
- escaping a hold or a rejection by withdrawing and registering again:
  ``test_hold_escape.py``;
- hostile CSV, CSV injection, a password holding an ``@``: ``test_shell_input.py``;
- Unicode digits and other arguments no handler should choke on: ``test_unicode_digits.py``
  and the Hypothesis fuzz ``test_fuzz_commands.py``;
- what the bot already resisted: a self-vouch, a trainee's vouch, a repeat vouch, a nick
  change, the old nick taken, control codes, CTCP at the start of a reply, splitting at 512
  bytes with multibyte text (``test_hostmask_attacks.py``); a missing account tag,
  ``ACCOUNT *`` and a nick taken without the account, in all three ways the bot learns
  accounts, on InspIRCd + Atheme (``tests/services/test_account_identity.py``).

The rules themselves, as a table: ``tests/unit/test_trust_rules.py``.
"""
