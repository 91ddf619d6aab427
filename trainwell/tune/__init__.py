"""trainwell.tune: `trainwell search` and trainwell.search(): grid, random and Bayesian (TPE) search with pruning over any train option.

    >>> result = trainwell.search("space.yaml", sampler="bayes", trials=20, data="digits")   # doctest: +SKIP
    >>> result.best_params, result.best_value, result.test_accuracy                           # doctest: +SKIP

Trials select on validation; the chosen configuration alone is tested, once (study.py has the layout).
    _search.py  search / show / conclude: the study from start to its one test
    space.py    the space file       storage.py  where the study lives     study.py  the worker loop
    trial.py    one trial (a run)    results.py  trial rows and tables      report.py the study's report.html
"""
from trainwell.tune._search import SearchResult, conclude, search, show
from trainwell.tune.report import is_study, write_study_report
from trainwell.tune.results import load

__all__ = ["SearchResult", "conclude", "is_study", "load", "search", "show", "write_study_report"]
