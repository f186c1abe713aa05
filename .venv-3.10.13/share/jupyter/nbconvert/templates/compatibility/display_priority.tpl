{{ resources.deprecated("This template is deprecated, please use base/display_priority.j2") }}
{%- extends 'display_priority.j2' -%}
