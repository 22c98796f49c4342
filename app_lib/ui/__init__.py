"""What every page draws with: Markdown-safe text, number formats, the kept settings, the Plotly
charts, the page links and the face-detector switch. The lowest room: it imports no other part
of app_lib."""
