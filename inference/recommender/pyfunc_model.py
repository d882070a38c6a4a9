"""The recommender's pyfunc as MLflow logs it: models from code. MLflow stores this file
and runs it when the model is loaded, instead of a CloudPickle of the object (which ties a
logged model to the pickling library's and Python's versions, and which MLflow warns about
on every log)."""

from mlflow.models import set_model

from inference.recommender.pyfunc import RecommenderModel

set_model(RecommenderModel())
