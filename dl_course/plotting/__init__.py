"""Matplotlib figures, one module per figure family (PNG out via ``dl_course.results``).

Modules by capability: ``curves`` (learning curves, heatmaps), ``classification``,
``approximation``, ``model_selection``, ``stability`` (edge of stability), ``margins`` (implicit
bias on separable data), ``backward_error`` (GD vs gradient and modified flows), ``spectra``,
``landscape``, ``flatness`` (sharpness vs batch size / optimizer), ``capacity`` (random labels,
double descent), ``measure_ranking`` (generalization measures), ``scatter``, ``calibration``,
``ood``, ``generative``; shared helpers in ``style``. Import them by full path. Matplotlib picks a non-interactive
backend by itself on machines without a display.
"""
