"""Streamlit UI for the Spanish question-answering backend."""
