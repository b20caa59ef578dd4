"""Local readings of a paper's text: plain functions that turn words into checks.

Nothing here touches the database, storage or the network: each reader takes the text of a
normalised document (its own text layer or OCR) and what the checklist line expects, and
returns `Finding`s, hints for staff with the words they come from. Values read (an expiry
date, a revenu fiscal de référence) are proposed "à vérifier", never written anywhere.
"""
