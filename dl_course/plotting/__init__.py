"""Matplotlib figures, one module per figure family (PNG out via ``dl_course.results``).

Modules: ``curves`` (learning curves, heatmaps), ``spectra``, ``landscape``, ``scatter``,
``uncertainty``, ``generative``, ``stability`` (edge of stability), ``margins`` (implicit bias on
separable data), ``backward_error`` (GD vs gradient and modified flows). Import them by full path. Matplotlib picks a non-interactive
backend by itself on machines without a display.
"""
