"""The framework's ceiling: a minimal flask-smorest app (one blueprint, one route, one marshmallow schema
made once), the route a study read would be if the register did nothing but answer."""

import marshmallow as ma
from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint

app = Flask(__name__)
app.config.update(API_TITLE="minimal", API_VERSION="1", OPENAPI_VERSION="3.0.3")
api = Api(app)
blp = Blueprint("hello", __name__)


class HelloSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    title = ma.fields.String()


@blp.route("/hello/<int:item_id>")
class Hello(MethodView):
    @blp.response(200, HelloSchema)
    def get(self, item_id):
        return {"id": item_id, "name": "NCT04280705", "title": "Adaptive COVID-19 Treatment Trial (ACTT)"}


api.register_blueprint(blp)
