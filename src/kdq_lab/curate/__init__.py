"""Curation for a new user: profiles, recommendations with reasons, diversification, and studies.

* :mod:`~kdq_lab.curate.profile`: read, check and edit a profile;
* :mod:`~kdq_lab.curate.recommend`: the curated list, explained;
* :mod:`~kdq_lab.curate.rerank`: MMR diversification;
* :mod:`~kdq_lab.curate.studies`: sensitivity to neighbouring profiles, the cost of diversifying.
"""

from kdq_lab.curate.profile import Profile, check_profile, edited, profile_frame, profile_from_dict, read_profile
from kdq_lab.curate.recommend import EMPTY_PROFILE_NOTE, Curation, item_content, recommend
from kdq_lab.curate.rerank import mmr
from kdq_lab.curate.studies import diversification_cost, neighbour_overlap, popular_titles

__all__ = [
    "EMPTY_PROFILE_NOTE",
    "Curation",
    "Profile",
    "check_profile",
    "diversification_cost",
    "edited",
    "item_content",
    "mmr",
    "neighbour_overlap",
    "popular_titles",
    "profile_frame",
    "profile_from_dict",
    "read_profile",
    "recommend",
]
