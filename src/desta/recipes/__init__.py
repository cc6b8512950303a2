"""Named end-to-end recipes: drivers that chain the library's data, training and evaluation stages.

``desta.recipes.tiny`` builds desta-tiny (``desta recipe tiny``) and holds its single definition,
``desta-tiny.yaml``.
"""
