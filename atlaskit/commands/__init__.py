"""Back-ends of the command-line verbs that use a study's trained models.

``atlaskit predict`` (deepGPS: a FASTA file → generated images and labels),
``atlaskit evaluate`` (DeepYeast: a checkpoint on a folder of real crops) and ``atlaskit place``
(cytoself: a new protein's images placed on a chapter-01 atlas) live here, one module
per verb, beside :mod:`atlaskit.cli`, which only parses arguments and prints. They sit above the
studies: the studies never import them.
"""
