"""FER2013 and FER+ as users download them, the images and paths a user gives: reading,
checking and exploring data. Imports only fer_core's core modules (errors, labels, storage,
safe_text).
"""
