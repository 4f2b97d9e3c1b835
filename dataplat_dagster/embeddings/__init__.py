"""Embeddings of datasets and image folders: the ``[project, "embeddings", NAME]`` assets.

- ``tabular``: rows as vectors, without torch; ``clip``: images and text through open_clip;
- ``neighbors``: exact or indexed nearest neighbours, duplicates, uniqueness; ``maps``: the 2D map;
- ``compute``: what a run does; ``assets``: the asset and its job; ``manage``: the CLI's side
  and the status in the lists; ``loading``: ``StoredEmbeddings`` and the IO manager;
  ``queries``, ``explorer`` and ``projector``: what the CLI answers and writes.
"""
