"""Number formats python-stdnum does not cover, one module per kind, in stdnum's own style.

Each module has the small API of a ``stdnum`` module: ``compact``, ``validate`` (returns the
compact number or raises a :class:`stdnum.exceptions.ValidationError`), ``is_valid`` and
``format``, and its docstring says where the definition of the format comes from.

- :mod:`.cz_ico`: Czech Republic, IČO (identifikační číslo osoby).
- :mod:`.gb_company_number`: UK Companies House company number (with its prefixes).
- :mod:`.nl_kvk`: Netherlands KvK number; :mod:`.nl_vestigingsnummer`: KvK branch number.
- :mod:`.pl_krs`: Poland, Krajowy Rejestr Sądowy number.
- :mod:`.it_rea`: Italy, REA number (province and number).
- :mod:`.de_handelsregister`: stdnum's German Handelsregister number, with the register court
  given apart and the word "Amtsgericht" tolerated.
"""
