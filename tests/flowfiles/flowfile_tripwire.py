"""A module that fails loudly when imported.

A flow file names ``flowfile_tripwire.detonate`` as an action; flow files
are data, so reading or checking one must never import this module.
"""

raise AssertionError("flowfile_tripwire was imported because a flow file named it.")
