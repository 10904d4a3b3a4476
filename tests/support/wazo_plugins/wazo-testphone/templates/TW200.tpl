{% extends 'base.tpl' %}
{% block extra %}model_specific = TW200{% endblock %}
