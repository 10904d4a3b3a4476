# TestWazo device file (base.tpl)
{% for no, line in XX_lines -%}
line{{ no }}.user = {{ line.username }}
line{{ no }}.password = {{ line.password }}
line{{ no }}.proxy = {{ line.proxy_ip }}
{% endfor -%}
tz_hours = {{ XX_tz_hours }}
dst = {{ XX_dst }}
phonebook = {{ XX_xivo_phonebook_url }}
{% block extra %}{% endblock %}
