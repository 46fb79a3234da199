"""Names and light metadata of the catalogs, without torch.

Config checks (`ganpipe.validation`) look names up here, so a config error or `ganpipe train
--dry-run` never imports torch. The implementations (`ganpipe.gans`, `ganpipe.losses`,
`ganpipe.evaluate.metrics`, `ganpipe.data.sources`) register under exactly these names.
"""
