"""The ZEAL annotation assistant: `python app.py --help` lists the settings."""
# Placeholder until the UI lands.
import gradio as gr

if __name__ == "__main__":
    with gr.Blocks(title="ZEAL") as demo:
        gr.Markdown("# ZEAL annotation assistant")
    demo.launch(server_name="127.0.0.1")
