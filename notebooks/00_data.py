# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 00 · The data
#
# Test chapter.

# %% tags=["parameters"]
scale = "ci"
data = "real"
data_dir = None
seed = 0
min_grade = 1

# %%
from atlaskit import book

run = book.setup_chapter("00_data", scale=scale, data=data, data_dir=data_dir, seed=seed,
                         describe_data="real annotation tables")

# %%
import plotly.express as px
fig = px.bar(x=["a", "b"], y=[min_grade, 2])
fig.show()

# %%
# NBVAL_CHECK_OUTPUT
print(min_grade)
