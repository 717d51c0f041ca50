"""Export tooling, one room a purpose:

- :mod:`.bundle`: the bundle format, read and written by both sides (no torch);
- :mod:`.export`: the export side, which needs torch (exporter, oracle, parity, pipeline);
- :mod:`.deploy`: the deployment side, which never needs torch (verify, predict, batch, bench);
- :mod:`.variants`: fp16 and int8 variants of a bundle's model, made without torch;
- :mod:`.card`: ``report.html``, the model card, made without torch;
- :mod:`.runtimes`: the built-in runtimes, and how every command selects, opens and runs one.
"""
