"""The pricing pyfunc as MLflow logs it: models from code. MLflow stores this file and runs
it when the model is loaded, instead of a CloudPickle of the object (see
`inference/recommender/pyfunc_model.py`)."""

from mlflow.models import set_model

from inference.pricing.pyfunc import PricingPyfunc

set_model(PricingPyfunc())
